"""Accelerated ops (placeholder while the layer is assembled)."""


def register_cpu() -> str:
    return "off (not assembled yet)"


def register_cuda() -> str:
    return "off (not assembled yet)"
