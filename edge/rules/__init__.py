"""Rules: confirmation, dwell, zones, lifecycle and cool-down per violation type."""

from edge.rules.class_map import ClassMap
from edge.rules.engine import EvidenceOffer, RuleEngine, RuleResult, TriggeredEvent
from edge.rules.zones import ZoneFilter

__all__ = ["ClassMap", "EvidenceOffer", "RuleEngine", "RuleResult", "TriggeredEvent", "ZoneFilter"]
