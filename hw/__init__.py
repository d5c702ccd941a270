"""BrainScaleS-2 adapter: mapping, chip connections (mock and real), hardware-in-the-loop layers.

    session = ChipSession(HardwareConfig.from_dict(cfg.get("hardware"), base_dir), shapes)
    t_out = first_spike_times(t_in, w, params, backend=session.layer_backend(i))

The pieces: `hw.config` (settings), `hw.mapping` (placement, 6-bit weights),
`hw.spike_train` (the batch as one spike train and back), `hw.connection` (the
connection protocol, the mock chip, the real chip), `hw.session` (running layers
with retries, the backward pass in the chip's model), `hw.backend` (the module
registered as backend "bss2"), `hw.analog` (rate layers on the analog matrix-multiply
mode: `AnalogSession(hardware, seed).linear_backend(i).linear(x, w, b)`).
"""
from hw.analog import (
    AnalogConnection,
    AnalogLinearBackend,
    AnalogSession,
    IdealAnalogBackend,
    MockAnalogConnection,
    RealAnalogConnection,
    chip_mac,
)
from hw.config import AnalogConfig, HardwareConfig
from hw.connection import (
    Connection,
    CorruptReply,
    HardwareError,
    MockConnection,
    RealConnection,
    RunFault,
    RunResult,
    RunTimeout,
    TruncatedReply,
)
from hw.mapping import ChipConfig, MappingError, NetworkMapping, place_network, quantize_weights
from hw.session import ChipLayerBackend, ChipSession, IdealLayerBackend
from hw.spike_train import SpikeTrain, build_train, cut_spikes

__all__ = [
    "AnalogConfig",
    "AnalogConnection",
    "AnalogLinearBackend",
    "AnalogSession",
    "ChipConfig",
    "ChipLayerBackend",
    "ChipSession",
    "Connection",
    "CorruptReply",
    "HardwareConfig",
    "HardwareError",
    "IdealAnalogBackend",
    "IdealLayerBackend",
    "MappingError",
    "MockAnalogConnection",
    "MockConnection",
    "NetworkMapping",
    "RealAnalogConnection",
    "RealConnection",
    "RunFault",
    "RunResult",
    "RunTimeout",
    "SpikeTrain",
    "TruncatedReply",
    "build_train",
    "chip_mac",
    "cut_spikes",
    "place_network",
    "quantize_weights",
]
