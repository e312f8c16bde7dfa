B
inn.weightJ €f¾n„Ü<fâ”>>@“>æ™>¼9±=ÎG¾z\‚=