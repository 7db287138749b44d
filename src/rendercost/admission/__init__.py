"""rendercost.admission: accept or refuse before anything is queued."""
