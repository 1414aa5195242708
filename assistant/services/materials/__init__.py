"""Materials handed in after the first visit (补交材料): inspection of uploads, offline OCR, the
pre-check (预审) and photo questions; storage and forwarding of uploads."""
