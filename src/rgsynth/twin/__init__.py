"""The digital twin: a synthetic NSCLC Radiogenomics cohort written in the collection's formats."""
