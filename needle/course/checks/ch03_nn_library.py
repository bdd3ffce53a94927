"""Chapter 03 (course hw2): initialisers, modules, optimizers, data pipeline, MLP-ResNet (work in progress by G3)."""
from __future__ import annotations
