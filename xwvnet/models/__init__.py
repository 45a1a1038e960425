"""Backbones, weights files, encoders and the named encoders, in four rooms without a circle.

``resnet`` (torchvision-compatible ResNets and THE layer table), ``weights`` (read state dicts safely, verify,
infer the architecture, load strictly), ``encoder`` (the spec: weights + transform + metadata) and ``zoo`` (the
named encoders and :func:`~xwvnet.models.zoo.load_encoder`). Each imports only rooms before it in that order.
Nothing is imported here, so that ``import xwvnet.models`` does not pull in torch before a model is needed.
"""
