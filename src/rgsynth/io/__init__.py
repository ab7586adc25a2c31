"""Readers of cohorts on disk (DICOM CT and SEG, TCIA and folder layouts, gene and clinical
tables) and the shared CT DICOM template."""
