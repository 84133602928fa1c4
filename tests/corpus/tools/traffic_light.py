"""Simulate a traffic-light state machine over a sequence of timer ticks and events."""


def traffic_light(events, start="red"):
    """Apply events ('tick', 'emergency', 'reset') and return the visited states."""
    transitions = {"red": "green", "green": "yellow", "yellow": "red", "flashing": "flashing"}
    state = start
    history = [state]
    for event in events:
        if event == "tick":
            state = transitions[state]
        elif event == "emergency":
            state = "flashing"
        elif event == "reset":
            state = "red"
        else:
            raise ValueError(f"unknown event: {event}")
        history.append(state)
    return history
