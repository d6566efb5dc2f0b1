"""Importing the package registers every model."""
from steer.models import cnn_rnn, features_lstm, komanda, pilotnet  # noqa: F401
from steer.models.base import SteerModel, detach_state, reset_state
from steer.models.registry import MODELS, create_model, load_model

__all__ = ["MODELS", "SteerModel", "create_model", "detach_state", "load_model", "reset_state"]
