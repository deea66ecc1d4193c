"""A synthetic dataset in the exact AI-Hub layout: kemotion's embedded default when the real data is absent."""

from kemotion.data.synthetic.generate import SyntheticAIHub

__all__ = ["SyntheticAIHub"]
