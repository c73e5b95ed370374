"""Language-model artifacts on their runtimes: one session protocol (session.py), one module per
runtime (llamacpp.py: GGUF on llama.cpp) and the exporters that write the artifacts."""
