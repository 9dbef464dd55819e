"""Data: the SynthPose generator and the COCO top-down pipeline."""
