"""From raw frames to model inputs: face model, landmarks, alignment, the faces stage, optical flow, the flow stage."""
