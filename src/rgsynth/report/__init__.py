"""``rgsynth report RUN``: one self-contained HTML page (and its figures and tables as
files) rebuilt from a run folder's files alone: the paper's figures, the maps beside the
twin's truth, and every score of ours, MC-GAN and the classic pipeline."""
