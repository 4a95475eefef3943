"""Text overlay, fonts, SNS size presets and smart crops."""
