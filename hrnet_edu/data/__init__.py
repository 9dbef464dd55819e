"""Data: the SynthPose generator and the COCO top-down pipeline.

* ``synthpose`` — procedural figures written as a COCO person-keypoints dataset
  (``generate``, the ``hrnet-edu synth`` command); ``synth_render`` draws them.
* ``coco`` and ``transforms`` — boxes → crops → heatmap targets for training and evaluation.

Import the submodule you need (``from hrnet_edu.data import synthpose``): generating data
does not import torch.
"""
