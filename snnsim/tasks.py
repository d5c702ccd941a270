"""Tasks: what the output layer means, its loss, its prediction rule and metrics.

Spike-time classification (published losses, times in units of tau_s):

    TTFS:  L = log sum_k exp(-t_k / (xi tau_s)) + t_y / (xi tau_s) + alpha exp(t_y / (beta tau_s))
           (cross-entropy of a softmax over -t, plus a push towards early label spikes);
           a sample whose label neuron did not spike costs MISSING_SPIKE_LOSS.
           Prediction: the earliest output.
    MSE:   L = 1/2 (t_k - target_k)^2 averaged over samples and outputs, target t_correct for
           the label neuron and t_wrong for the others; an output that did not spike costs
           MISSING_SPIKE_LOSS. Prediction: the output closest to t_correct.

A sample whose selected output did not spike counts as wrong (prediction -1).
"""
from __future__ import annotations

import torch

MISSING_SPIKE_LOSS = 100.0


class SpikeTimeClassification:
    """Classification by first-spike times of the output layer (TTFS or MSE loss)."""

    def __init__(self, loss: dict, tau_syn: float, n_classes: int):
        self.kind = loss["type"]
        self.n_classes = n_classes
        self.tau_syn = float(tau_syn)
        self.xi, self.alpha, self.beta = loss["xi"], loss["alpha"], loss["beta"]
        self.t_correct = loss["t_correct"] * self.tau_syn
        self.t_wrong = loss["t_wrong"] * self.tau_syn

    def per_sample_loss(self, t_out: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Loss of every sample (no gradient flows through non-spiking outputs)."""
        fired = torch.isfinite(t_out)
        # Missing spikes are replaced before any arithmetic so that no inf*0 reaches autograd.
        t = torch.where(fired, t_out, torch.zeros_like(t_out))
        if self.kind == "TTFS":
            scale = self.xi * self.tau_syn
            t_label = t.gather(1, labels[:, None])[:, 0]
            logits = torch.where(fired, -t / scale, torch.full_like(t, -torch.inf))
            loss = (torch.logsumexp(logits, 1) + t_label / scale
                    + self.alpha * torch.exp(t_label / (self.beta * self.tau_syn)))
            label_fired = fired.gather(1, labels[:, None])[:, 0]
            return torch.where(label_fired, loss, torch.full_like(loss, MISSING_SPIKE_LOSS))
        target = torch.full_like(t, self.t_wrong)
        target.scatter_(1, labels[:, None], self.t_correct)
        element = torch.where(fired, 0.5 * (t - target) ** 2,
                              torch.full_like(t, MISSING_SPIKE_LOSS))
        return element.mean(1)

    def loss(self, t_out: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.per_sample_loss(t_out, labels).mean()

    def predict(self, t_out: torch.Tensor) -> torch.Tensor:
        """Selected class per sample, -1 where the selected output did not spike."""
        if self.kind == "TTFS":
            choice = t_out.argmin(1)
        else:
            distance = torch.where(torch.isfinite(t_out), (t_out - self.t_correct).abs(),
                                   torch.full_like(t_out, torch.inf))
            choice = distance.argmin(1)
        fired = torch.isfinite(t_out.gather(1, choice[:, None])[:, 0])
        return torch.where(fired, choice, torch.full_like(choice, -1))
