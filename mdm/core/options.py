"""Command-line options declared once.

Each `Config` field is declared with `option(...)`, which records in the field's metadata
its flag name (the release's, e.g. `evaluateActionWise`), help text and valid range. The
command line defines its absl flags from these fields (mdm.cli) and every range check
comes from the same declaration (`violations`), so no flag is written twice.

Nothing here imports TensorFlow: the checks run before it loads.
"""

import dataclasses
import math

_KEY = "mdm_option"


@dataclasses.dataclass(frozen=True)
class OptionSpec:
    """What the command line needs to know about one Config field."""

    help: str
    flag: str = ""  # "" = the field's own name
    flag_default: object = None  # the flag's default where it differs from the field's
    at_least: object = None
    above: object = None  # exclusive lower bound
    at_most: object = None
    choices: tuple = ()
    note: str = ""  # appended to a range message: what the bounds mean

    def range_text(self):
        """'at least 1', 'in (0, 1]', '0, 1 or 2', ... or '' when unconstrained."""
        if self.choices:
            words = ["empty" if c == "" else str(c) for c in self.choices]
            return ", ".join(words[:-1]) + f" or {words[-1]}" if len(words) > 1 else words[0]
        if self.at_most is not None and self.above is not None:
            return f"in ({self.above}, {self.at_most}]"
        if self.at_most is not None and self.at_least is not None:
            return f"between {self.at_least} and {self.at_most}"
        if self.above is not None:
            return f"above {self.above}"
        if self.at_least is not None:
            return f"at least {self.at_least}"
        if self.at_most is not None:
            return f"at most {self.at_most}"
        return ""

    def violation(self, value):
        """Why `value` is out of range (without the flag name), or None."""
        if isinstance(value, float) and not math.isfinite(value):
            return "a finite number"
        if self.choices:
            return None if value in self.choices else self.range_text()
        out_of_range = ((self.at_least is not None and value < self.at_least)
                        or (self.above is not None and value <= self.above)
                        or (self.at_most is not None and value > self.at_most))
        return self.range_text() if out_of_range else None


def option(default, help, **spec):  # pylint: disable=redefined-builtin
    """A dataclass field with `default` whose command-line flag is described by `spec`
    (the keywords of `OptionSpec`)."""
    return dataclasses.field(default=default, metadata={_KEY: OptionSpec(help, **spec)})


def spec_of(field):
    """The field's OptionSpec, or None for a field that is no flag."""
    return field.metadata.get(_KEY)


def flag_name(field):
    return spec_of(field).flag or field.name


def flag_default(field):
    spec = spec_of(field)
    return field.default if spec.flag_default is None else spec.flag_default


def option_fields(config_class):
    """The fields of `config_class` that are command-line flags, in declaration order."""
    return [field for field in dataclasses.fields(config_class) if spec_of(field)]


def violations(config):
    """One line per field of `config` outside its declared range, e.g.
    '--epochs must be at least 1 (got 0)'."""
    lines = []
    for field in option_fields(type(config)):
        spec, value = spec_of(field), getattr(config, field.name)
        wanted = spec.violation(value)
        if wanted:
            note = f" ({spec.note})" if spec.note and spec.range_text() == wanted else ""
            lines.append(f"--{flag_name(field)} must be {wanted}{note} (got {value!r})")
    return lines
