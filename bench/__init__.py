"""Speed and scale benchmarks (`python -m bench.<script>`); results in bench/README.md."""
