"""Driving with a trained model: frame-by-frame inference with the state carried (`Pilot`)."""
