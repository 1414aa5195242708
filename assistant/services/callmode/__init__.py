"""Call mode on the desk: a hotline call transcribed live (``phrases``), the assist
suggestions and knowledge card following it with hysteresis (``session``), the ticket
draft filled by rules (``draft``) and saved sealed (``store``). Tunables in
``callmode.yml``."""
