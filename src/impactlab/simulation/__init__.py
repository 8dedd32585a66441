"""Market simulation: a matching engine, calibrated order flow, historical replay with the trader's own
impact, an Almgren–Chriss world and Gymnasium environments."""
