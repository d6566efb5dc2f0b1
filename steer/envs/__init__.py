"""Simulators users already have, through Gymnasium's `Env` convention (`reset(seed=...)`, `step(action)`, an
image observation): an environment declared once (spec.py), its actions in steer's units (adapter.py),
expert episodes into the frame cache (record.py) and a checkpoint at the wheel beside the expert and a
zero-steering floor (loop.py). gymnasium is optional (`pip install -e '.[gym]'`); only an environment
named by its Gymnasium id imports it.
"""
