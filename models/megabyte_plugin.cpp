// registration added with the model
