"""Facts about the Sushi versions elkbuild targets, read from Sushi's sources.

Elk Audio OS 0.11 ships Sushi 0.11; Elk Audio OS 1.x ships Sushi 1.0 and later.
"""

from __future__ import annotations

from elkbuild.errors import UsageError

VERSIONS = ("0.11", "1.x")

# Top-level sections each version reads, in the order Sushi loads them. Sushi validates
# the whole document against the schema of a section when it loads that section.
SECTIONS: dict[str, tuple[str, ...]] = {
    "0.11": ("host_config", "tracks", "midi", "osc", "cv_control", "events"),
    "1.x": ("host_config", "tracks", "pre_track", "post_track", "midi", "osc", "cv_control",
            "events", "initial_state"),
}

# Schema file that governs each section (pre/post tracks share the tracks schema).
SCHEMA_OF_SECTION = {
    "host_config": "host_config_schema.json",
    "tracks": "tracks_schema.json",
    "pre_track": "tracks_schema.json",
    "post_track": "tracks_schema.json",
    "midi": "midi_schema.json",
    "osc": "osc_schema.json",
    "cv_control": "cv_gate_schema.json",
    "events": "events_schema.json",
    "initial_state": "state_schema.json",
}

# Keys only Sushi 1.x reads; Sushi 0.11 passes over them without a word.
ONLY_1X_KEYS = (
    ("pre_track",), ("post_track",), ("initial_state",), ("midi", "clock_output"),
    ("host_config", "master_limiter"), ("host_config", "rt_midi_input_mappings"),
    ("host_config", "rt_midi_output_mappings"),
)

# Built-in ("internal") plugin uids. A uid Sushi does not know fails the whole load.
# 1.x lists every uid of the 1.x releases (1.0 added send/return/sample_delay,
# later releases the brickworks set, freeverb, stereo_mixer and wav_streamer).
_TESTING_0_11 = (
    "arpeggiator", "control_to_cv", "cv_to_control", "equalizer", "gain", "lfo",
    "mono_summing", "passthrough", "peakmeter", "sampleplayer", "step_sequencer",
    "transposer", "wav_writer",
)
_TESTING_1X = _TESTING_0_11 + (
    "freeverb", "return", "sample_delay", "send", "stereo_mixer", "wav_streamer",
)
_BRICKWORKS_1X = (
    "bitcrusher", "chorus", "clip", "comb_delay", "compressor", "dist", "drive", "eq3band",
    "flanger", "fuzz", "highpass", "multi_filter", "noise_gate", "notch", "phaser",
    "saturation", "simple_synth", "tremolo", "vibrato", "wah",
)
INTERNAL_PLUGINS: dict[str, frozenset[str]] = {
    "0.11": frozenset(f"sushi.testing.{n}" for n in _TESTING_0_11),
    "1.x": frozenset([f"sushi.testing.{n}" for n in _TESTING_1X]
                     + [f"sushi.brickworks.{n}" for n in _BRICKWORKS_1X]),
}


def normalize_version(value: object, flag: str = "--os") -> str:
    """'0.11', '1.x' and their spellings (1, 1.0, 1.1, 0.11.0) to one of VERSIONS."""
    text = repr(value) if isinstance(value, float) else str(value).strip()
    if text in ("1", "1.0", "1.1", "1.2", "1.x", "1.X"):
        return "1.x"
    if text in ("0.11", "0.11.0", "0.11.x"):
        return "0.11"
    raise UsageError(f"{flag} {value!r} is not a Sushi version elkbuild knows",
                     "use 0.11 (Elk Audio OS 0.11) or 1.x (Elk Audio OS 1.x)")
