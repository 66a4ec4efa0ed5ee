"""hwbench: reproducible handwriting-recognition benchmarks."""
