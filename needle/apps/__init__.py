"""Applications built on needle: the chapter-1/2 MNIST functions, models and training loops."""
