"""rxagent: agent streaming on Rx observables."""
