"""Structure learning (ALGORITHM.md steps 0-2): channel gates, the Taylor saliency, the
allocation of channels to units, channel redistribution, and the learner that ties them."""
