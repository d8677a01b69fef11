"""The neuron browser: an index over a projection (index.py), a local server (server.py) and a
static export (export.py) of one bundled page (static/). No ROS, no network."""
