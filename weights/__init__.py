"""The weights bundled with vps (package data: ``*.safetensors`` and ``manifest.json``; see README.md here)."""
