"""elkbuild: from a trained model to a real-time VST3 plugin under Sushi on Elk Audio OS."""

__version__ = "0.1.0"
