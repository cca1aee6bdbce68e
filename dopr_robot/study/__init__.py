"""The study (issue 7, in progress): what exists so far is the paired comparison that turns
per-seed closed-loop success into a verdict (`dopr_robot.study.paired`)."""

from .paired import PairedComparison, compare_paired

__all__ = ["PairedComparison", "compare_paired"]
