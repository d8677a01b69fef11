"""Open-loop replay: a recorded bag's observations through a model under steering variants."""
