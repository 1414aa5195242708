"""Offline speech for the kiosk: Vosk speech recognition and pyttsx3/espeak-ng speech."""
