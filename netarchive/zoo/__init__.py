"""Factories of architectures that pruning research uses, for ``netarchive ingest --model``.

Each factory takes no arguments and returns a fresh ``nn.Module`` whose state_dict has the keys that the
original code saves, so its checkpoints load by name: ``--model netarchive.zoo.openlth:cifar_resnet_20``.
"""
