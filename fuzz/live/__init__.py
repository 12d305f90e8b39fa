"""Live status of a run or a campaign: the state, the bus probe, the rich dashboard."""
