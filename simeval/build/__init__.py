"""What makes the shipped models: the data set, training, the optimized variants, the offline table.

Runtime code (track, sim, env, agents, eval) never imports from here.
"""
