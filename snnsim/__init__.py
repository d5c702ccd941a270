"""snnsim: an event-driven, hardware-aware spiking-network simulator with exact gradients."""
from snnsim.lambertw import lambertw
from snnsim.params import NeuronParams
from snnsim.spike_times import first_spike_times

__all__ = ["NeuronParams", "first_spike_times", "lambertw"]
