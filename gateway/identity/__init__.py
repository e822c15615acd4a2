"""The chain of identity: DINs, lot bindings by two people, their attribution to records, exceptions for QA."""

from gateway.identity.attribution import EXCEPTION_PARAMETER, Attribution, IdentityMode
from gateway.identity.bindings import Binding, BindingBook
from gateway.identity.din import Din, mod37_2, parse_din
from gateway.identity.service import BINDING_PARAMETER, Identity, IdentityError

__all__ = [
    "BINDING_PARAMETER",
    "EXCEPTION_PARAMETER",
    "Attribution",
    "Binding",
    "BindingBook",
    "Din",
    "Identity",
    "IdentityError",
    "IdentityMode",
    "mod37_2",
    "parse_din",
]
