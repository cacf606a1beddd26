"""The only place that knows verl: reward managers, the coordinator actor, config reading."""
