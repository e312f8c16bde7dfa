B
embed.biasJ Ãâ=¼P¼7v=üÀİ=‚Ú~¾ˆe’<¨âÛ=ec:¾