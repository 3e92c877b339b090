"""The formulary a hospital edits: drug -> sigs and may_treat indications (clinrlhf.formulary.formulary)."""

from clinrlhf.formulary.formulary import (
    Formulary,
    FormularyDrug,
    FormularyError,
    Indication,
    load_formulary,
    parse_formulary,
)

__all__ = ["Formulary", "FormularyDrug", "FormularyError", "Indication", "load_formulary", "parse_formulary"]
