"""Language-model artifacts: sessions over each runtime (one protocol, session.py; one module per
runtime: ortgenai.py for ONNX Runtime GenAI, llamacpp.py for GGUF on llama.cpp), the exporters that
write the artifacts, LLM target profiles and the bench. Imports nothing of compress: the torch
reference session and the verification gate live in compress/llm."""

from edgecompress.targets.llm.session import Generation, LMSession, open_session

__all__ = ["Generation", "LMSession", "open_session"]
