"""The live recognizer: capture, tracking, sliding windows, spotting and publishing."""
