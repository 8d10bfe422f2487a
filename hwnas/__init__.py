"""hwnas: measure what a network costs on a device, model it, and search under the device's budget."""

__version__ = "0.1.0"
