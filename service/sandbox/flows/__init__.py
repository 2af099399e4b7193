"""A stand-in for Power Automate's side of a webhook trigger: flows with callback URLs that record what they get.

    sim = FlowsSimulator()
    running = serve_in_thread(sim, sim)            # service.sandbox.launch; running.url
    flow = sim.create_flow(running.url)            # {"id", "callbackUrl"}
    sim.script(flow["id"], [500, 202])             # the next answers: 500, then 202 (then always 202)
    sim.deliveries(flow["id"])                     # what arrived, with what was answered

Standalone (the walk-through in docs/triggers.md): ``python -m service.sandbox.flows --port 8099``.
"""

from service.sandbox.flows.app import FlowsSimulator

__all__ = ["FlowsSimulator"]
