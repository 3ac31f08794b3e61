"""Use cases: send, receive, acknowledge, escalate, deliver, schedule, witness."""
