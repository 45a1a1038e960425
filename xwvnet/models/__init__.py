"""Backbones, encoders and named weights.

``resnet`` (torchvision-compatible ResNets), ``encoder`` (weights + transform + metadata) and ``registry``
(named pretrained weights, download, integrity). Nothing is imported here, so that ``import xwvnet.models`` does not
pull in torch before a model is needed.
"""
