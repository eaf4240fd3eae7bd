"""An optional Prometheus endpoint for long training runs (``--metrics-port``).

``prometheus_client`` is an optional extra (``pip install spikeloop[metrics]``, Apache-2.0),
imported only when a port is given. The metrics live in a registry of their own (not the
process-wide default one) and the HTTP server is shut down when training ends, on every
path: a run owns only what it started.

Per episode: ``spikeloop_hidden_neurons``, ``spikeloop_firing_rate`` (spikes per hidden
neuron and step), ``spikeloop_sparsity`` (share of hidden neuron-steps without a spike),
``spikeloop_episode_reward``; counters ``spikeloop_episodes_total``,
``spikeloop_neurons_grown_total``, ``spikeloop_neurons_pruned_total``, with the label
``agent``.
"""
from __future__ import annotations

from spikeloop.core.errors import ConfigError


class TrainingMetrics:
    """The endpoint of one training run; a context manager (the server stops on exit)."""

    def __init__(self, port: int, agent: str, addr: str = "127.0.0.1"):
        try:
            import prometheus_client as pc
        except ImportError:
            raise ConfigError("--metrics-port needs prometheus_client: pip install 'spikeloop[metrics]'") from None
        self.registry = pc.CollectorRegistry()
        labels = {"labelnames": ["agent"], "registry": self.registry}
        self._gauges = {name: pc.Gauge(f"spikeloop_{name}", doc, **labels).labels(agent) for name, doc in (
            ("hidden_neurons", "hidden spiking neurons of the network"),
            ("firing_rate", "spikes per hidden neuron and step in the last episode"),
            ("sparsity", "share of hidden neuron-steps without a spike in the last episode"),
            ("episode_reward", "return of the last training episode"))}
        self._counters = {name: pc.Counter(f"spikeloop_{name}", doc, **labels).labels(agent) for name, doc in (
            ("episodes", "training episodes"), ("neurons_grown", "neurons added by growth"),
            ("neurons_pruned", "neurons removed by pruning"))}
        try:
            self._server, self._thread = pc.start_http_server(port, addr=addr, registry=self.registry)
        except OSError as e:
            raise ConfigError(f"--metrics-port {port}: cannot listen on {addr}:{port} ({e.strerror or e})") from None
        self.port = self._server.server_port

    def episode(self, reward: float, neurons: int, firing_rate: float, sparsity: float, grown: int = 0,
                pruned: int = 0) -> None:
        """Record one training episode."""
        for name, value in (("hidden_neurons", neurons), ("firing_rate", firing_rate), ("sparsity", sparsity),
                            ("episode_reward", reward)):
            self._gauges[name].set(value)
        self._counters["episodes"].inc()
        self._counters["neurons_grown"].inc(grown)
        self._counters["neurons_pruned"].inc(pruned)

    def close(self) -> None:
        """Stop the server and release its port; safe to call twice."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> "TrainingMetrics":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class NoMetrics:
    """What a run without ``--metrics-port`` records: nothing."""

    port = None

    def episode(self, *args, **kwargs) -> None:
        pass

    def __enter__(self) -> "NoMetrics":
        return self

    def __exit__(self, *exc) -> None:
        pass


def training_metrics(port: int, agent: str) -> TrainingMetrics | NoMetrics:
    """The endpoint on ``port`` (0: none)."""
    return TrainingMetrics(port, agent) if port else NoMetrics()
