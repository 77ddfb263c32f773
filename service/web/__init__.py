"""The HTTP face: ``app.create_app`` wires everything; ``rest`` (completed and live calls, notes, exports),
``subscribers`` (the agents' and supervisors' websockets, listen-in), ``pages`` and ``static/`` (the agent
screen, supervisor board and review page), ``openapi``, ``metrics`` and ``limits`` (connection caps and
header timeouts below the app). May import every package but ``cli``.
"""
