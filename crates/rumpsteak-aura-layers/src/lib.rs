//! Handler layers: behaviour around a `ChoreoHandler`, composed as wrappers.
