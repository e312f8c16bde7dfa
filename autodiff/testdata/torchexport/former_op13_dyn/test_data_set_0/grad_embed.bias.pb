B
embed.biasJ ¦ýB>A½X=¨<«Ë=þWš¾ÖƒÇ=E‡Ý=Ù4¾